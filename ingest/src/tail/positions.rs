//! The positions file: where each followed file was read up to, as far as the event log
//! has it, and the intent of the batch being published (see the module docs of
//! [`super`], "Exactly once"). Written atomically (temporary file, `fsync`, rename,
//! `fsync` of the directory), so after a crash it holds either the previous or the new
//! state, never a torn one.
//!
//! Format (JSON), version 2; a version 1 file (no intent, no `name`, no `partition`)
//! is read as is:
//!
//! ```json
//! {"version": 2,
//!  "files": [{"path": "/var/log/app.log.1", "dev": 2049, "inode": 1234, "offset": 5120,
//!             "name": "/var/log/app.log", "partition": 0}],
//!  "intent": {"topic": "argus.logs", "tenant": "default", "marks": [[0, 9000]],
//!             "files": [{"dev": 2049, "inode": 1234, "labels": {"filename": "/var/log/app.log"},
//!                        "start": 5120, "records": [[1700000000000000000, 5200]], "stale": []}]}}
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use argus_schemas::Labels;
use serde::{Deserialize, Serialize};

/// One followed file: its last known path, identity, and the offset just after the last
/// line the event log is known to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPosition {
    pub path: PathBuf,
    pub dev: u64,
    pub inode: u64,
    pub offset: u64,
    /// The `filename` label of the file's stream: the path it had when first followed,
    /// kept across restarts so a rotated file stays in its stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The event-log partition its stream's records were last written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
}

/// A batch that may have been published: written (and fsync'd) before the publish,
/// cleared by the checkpoint after it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// The topic the batch goes to.
    pub topic: String,
    /// The tenant of its records.
    pub tenant: String,
    /// `(partition, offset)`: every record of the batch that reaches the log lands at or
    /// after these offsets of these partitions (high watermarks, or the offset after
    /// the tailer's last acknowledged record there, taken before the publish).
    pub marks: Vec<(i32, i64)>,
    /// The batch's records, per file.
    pub files: Vec<IntentFile>,
}

/// The records of one file in an [`Intent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentFile {
    pub dev: u64,
    pub inode: u64,
    /// The stream labels of its records.
    pub labels: Labels,
    /// The file offset the batch starts at (the checkpoint before it).
    pub start: u64,
    /// `(timestamp, end offset)` of each record, in file order: the records tile the
    /// file from `start`. Timestamps are unique per tailer.
    pub records: Vec<(i64, u64)>,
    /// Timestamps of records of the file's content before a truncation (copytruncate):
    /// they are not re-readable and do not move the offset, but must not be sent twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<i64>,
}

/// What the positions file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    pub files: Vec<SavedPosition>,
    pub intent: Option<Intent>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsFile {
    version: u32,
    files: Vec<SavedPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intent: Option<Intent>,
}

const VERSION: u32 = 2;

/// Reads the positions file; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Positions, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Positions::default()),
        Err(e) => return Err(e.to_string()),
    };
    let f: PositionsFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!("not a positions file ({e}); move it away to start over from `start_at`")
    })?;
    if f.version == 0 || f.version > VERSION {
        return Err(format!(
            "positions file version {} is not a supported one (1 to {VERSION})",
            f.version
        ));
    }
    Ok(Positions {
        files: f.files,
        intent: f.intent,
    })
}

/// Replaces the positions file atomically; returns once it is durable.
pub fn save(path: &Path, positions: &Positions) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tail-positions.json".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let body = serde_json::to_vec(&PositionsFile {
        version: VERSION,
        files: positions.files.clone(),
        intent: positions.intent.clone(),
    })
    .map_err(std::io::Error::other)?;
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Makes the rename itself durable; not every filesystem supports it.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/pos.json");
        assert_eq!(load(&p).unwrap(), Positions::default());
        let v = Positions {
            files: vec![SavedPosition {
                path: "/var/log/a.log".into(),
                dev: 1,
                inode: 2,
                offset: 3,
                name: Some("/var/log/a".into()),
                partition: Some(2),
            }],
            intent: Some(Intent {
                topic: "argus.logs".into(),
                tenant: "t".into(),
                marks: vec![(2, 17)],
                files: vec![IntentFile {
                    dev: 1,
                    inode: 2,
                    labels: Labels::from_pairs([("filename", "/var/log/a")]),
                    start: 3,
                    records: vec![(10, 5), (11, 9)],
                    stale: vec![9],
                }],
            }),
        };
        save(&p, &v).unwrap();
        assert_eq!(load(&p).unwrap(), v);
        std::fs::write(&p, b"{oops").unwrap();
        assert!(load(&p).unwrap_err().contains("not a positions file"));
        std::fs::write(&p, br#"{"version":3,"files":[]}"#).unwrap();
        assert!(load(&p).unwrap_err().contains("version 3"));
    }

    #[test]
    fn version_1_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pos.json");
        std::fs::write(
            &p,
            br#"{"version":1,"files":[{"path":"/a","dev":1,"inode":2,"offset":3}]}"#,
        )
        .unwrap();
        let got = load(&p).unwrap();
        assert_eq!(got.intent, None);
        assert_eq!(got.files[0].offset, 3);
        assert_eq!(
            (got.files[0].name.as_deref(), got.files[0].partition),
            (None, None)
        );
    }
}
