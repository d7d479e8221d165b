//! Berth's trait over a backup repository, and the values it takes and gives.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::manifest::Manifest;

/// What to back up.
pub enum Source {
    /// A directory on this machine (a Docker volume's mountpoint when the engine is local).
    Dir(PathBuf),
    /// A tar stream of the data (the container engine's archive API when it is not local). It is
    /// unpacked into the staging area first, so the snapshot holds files, not one tar blob.
    Tar {
        archive: Box<dyn Read + Send>,
        /// The directory inside the archive that holds the data (`data` for an archive of
        /// `/data`), one plain path component.
        root: String,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(p) => f.debug_tuple("Dir").field(p).finish(),
            Self::Tar { root, .. } => f.debug_struct("Tar").field("root", root).finish_non_exhaustive(),
        }
    }
}

/// How a new snapshot is labelled. The snapshot's data appears under [`crate::SNAPSHOT_ROOT`].
#[derive(Debug, Clone)]
pub struct SnapshotMeta {
    /// Groups snapshots of one thing (`site-<id>`); the previous snapshot with the same label is
    /// the parent, so unchanged files are not even re-read.
    pub label: String,
    /// Free tags (`backup:<id>`, `kind:daily`).
    pub tags: Vec<String>,
}

/// One snapshot as Berth sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    /// 64 hex characters.
    pub id: String,
    pub time: DateTime<Utc>,
    pub label: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    /// Bytes of file data the snapshot covers.
    pub total_bytes: u64,
    /// Bytes this snapshot added to the repository, after de-duplication and compression.
    pub added_bytes: u64,
    pub file_count: u64,
}

/// How much pack data `check` reads back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// Structure only: index, packs present with their sizes, every tree.
    None,
    /// This percentage of the pack data, chosen at random.
    Percent(f64),
    /// Part `n` of `m` (1-based): running 1/m … m/m reads everything once.
    Part(u32, u32),
    All,
}

/// A restic-format repository (one customer's). Every method runs the engine on a blocking thread.
#[async_trait]
pub trait Repository: Send + Sync {
    /// Creates the repository when it does not exist yet; checks the key opens it.
    async fn ensure(&self) -> Result<()>;

    /// Writes a snapshot of `source` and returns it. Does not read it back: call
    /// [`Repository::verify`] before trusting it.
    async fn backup(&self, source: Source, meta: SnapshotMeta) -> Result<SnapshotInfo>;

    /// Every snapshot, oldest first.
    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>>;

    /// Reads every blob of the snapshot back (decrypting and checking each) and returns what it
    /// holds; a damaged snapshot is [`crate::BackupError::Corrupt`].
    async fn verify(&self, snapshot: &str) -> Result<Manifest>;

    /// Verifies the snapshot, then restores its data into `into` (created if missing; existing
    /// files there are overwritten, others left) and returns the manifest of what was restored.
    /// A damaged snapshot is refused before anything is written.
    async fn restore(&self, snapshot: &str, into: &Path) -> Result<Manifest>;

    /// Checks the whole repository, reading back as much pack data as `read` says.
    async fn check(&self, read: ReadData) -> Result<()>;

    /// Removes these snapshots (their data stays until [`Repository::prune`]).
    async fn forget(&self, snapshots: &[String]) -> Result<()>;

    /// Deletes the data no snapshot references any more.
    async fn prune(&self) -> Result<()>;

    /// Writes the snapshot's data as a tar stream (paths relative to the volume) into `out`.
    /// The stream is written as the blobs are read; a damaged blob ends it with an error.
    async fn dump_tar(&self, snapshot: &str, out: Box<dyn Write + Send>) -> Result<()>;
}
