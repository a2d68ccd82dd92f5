//! The positions file: where each followed file was read up to, as far as the event log
//! has it. Written atomically (temporary file, `fsync`, rename, `fsync` of the directory),
//! so after a crash it holds either the previous or the new checkpoint, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsFile {
    version: u32,
    files: Vec<SavedPosition>,
}

const VERSION: u32 = 1;

/// Reads the positions file; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Vec<SavedPosition>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let f: PositionsFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!("not a positions file ({e}); move it away to start over from `start_at`")
    })?;
    if f.version != VERSION {
        return Err(format!(
            "positions file version {} is not the supported {VERSION}",
            f.version
        ));
    }
    Ok(f.files)
}

/// Replaces the positions file atomically.
pub fn save(path: &Path, files: &[SavedPosition]) -> std::io::Result<()> {
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
    let body = serde_json::to_vec_pretty(&PositionsFile {
        version: VERSION,
        files: files.to_vec(),
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
        assert_eq!(load(&p).unwrap(), vec![]);
        let v = vec![SavedPosition {
            path: "/var/log/a.log".into(),
            dev: 1,
            inode: 2,
            offset: 3,
        }];
        save(&p, &v).unwrap();
        assert_eq!(load(&p).unwrap(), v);
        std::fs::write(&p, b"{oops").unwrap();
        assert!(load(&p).unwrap_err().contains("not a positions file"));
    }
}
