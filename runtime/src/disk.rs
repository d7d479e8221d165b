//! How much a site's data volume holds: a `du`-like walk of the volume's mountpoint on a
//! blocking thread, capped in files, run every few minutes (never on the 15-second collection
//! path). Docker's own `system df` would report the same for volumes, but on the engines Berth
//! supports (API 1.41) it cannot be limited to volumes: every call also sizes every image and
//! container's writable layer, which costs the engine far more than walking our own volumes.
//! The walk needs the mountpoint on this host (Berth on the Docker host, as root or with read
//! access to Docker's volume directory); otherwise there is no measurement.

use std::path::{Path, PathBuf};

use crate::docker::DockerEngine;
use crate::error::{Result, RuntimeError};

/// What a walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes allocated on disk (512-byte blocks, as `du` counts them; what a quota counts).
    pub bytes: u64,
    /// Files, directories and links seen.
    pub files: u64,
    /// False when the walk stopped at its cap (`bytes` then undercounts).
    pub complete: bool,
}

impl DockerEngine {
    /// Where a local volume's data is on this host; `None` when there is no such volume.
    pub async fn volume_mountpoint(&self, name: &str) -> Result<Option<PathBuf>> {
        match self.client().inspect_volume(name).await.map_err(RuntimeError::from) {
            Ok(v) => Ok(Some(PathBuf::from(v.mountpoint))),
            Err(RuntimeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// is not checked: a volume has none) and adds up what it holds, stopping after `max_files`
/// entries. Blocking: call it from `spawn_blocking`.
pub fn walk(root: &Path, max_files: u64) -> std::io::Result<Usage> {
    let mut usage = Usage { complete: true, ..Usage::default() };
    let mut stack = vec![root.to_owned()];
    let meta = std::fs::symlink_metadata(root)?;
    usage.bytes += allocated(&meta);
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed while we walked: nothing left to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            usage.files += 1;
            usage.bytes += allocated(&meta);
            if meta.is_dir() {
                stack.push(entry.path());
            }
            if usage.files >= max_files {
                usage.complete = false;
                return Ok(usage);
            }
        }
    }
    Ok(usage)
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_adds_up_files_and_stops_at_its_cap() {
        let dir = std::env::temp_dir().join(format!("berth-disk-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(dir.join("a/b")).expect("dirs");
        std::fs::write(dir.join("a/b/one"), vec![1u8; 64 * 1024]).expect("write");
        std::fs::write(dir.join("two"), vec![2u8; 64 * 1024]).expect("write");
        let usage = walk(&dir, 1000).expect("walk");
        assert!(usage.complete);
        assert_eq!(usage.files, 4, "{usage:?}");
        assert!(usage.bytes >= 128 * 1024, "{usage:?}");
        let capped = walk(&dir, 2).expect("walk");
        assert!(!capped.complete && capped.files == 2, "{capped:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
