//! Berth's backup engine.
//!
//! Backups are **restic-format repositories**, written and read through `rustic_core` (pinned
//! exactly in Cargo.toml: its API still moves between minor versions). That gives encryption,
//! content-defined chunking, de-duplication, `check --read-data` and forget/prune, and lets the
//! stock `restic` CLI read and verify what Berth wrote (docs/backups.md).
//!
//! - [`Repository`] is Berth's own trait over a repository: the only thing the rest of Berth
//!   calls. Every method runs rustic's blocking code on a blocking thread (`spawn_blocking`).
//! - [`RusticRepository`] is its one implementation.
//! - [`Backups`] hands out each customer's repository: one per customer (a directory or an S3
//!   prefix `customer-<id>`), opened with a password derived from Berth's secret key for that
//!   customer alone ([`berth_core::crypto::Keys::backup_repo_password`]).
//! - [`manifest`]: what a snapshot (or a directory) holds, file by file with SHA-256, and one
//!   digest over it; verification, restores and tests compare these.
//!
//! Errors are [`BackupError`]; a snapshot whose data does not read back intact is
//! [`BackupError::Corrupt`], never a partial success.

pub mod error;
pub mod manifest;
mod repository;
mod rustic;
mod tarball;

use std::path::PathBuf;
use std::sync::Arc;

use berth_core::config::{BackupConfig, BackupTarget};
use berth_core::crypto::Keys;
use uuid::Uuid;

pub use error::{BackupError, Result};
pub use manifest::{Entry, EntryKind, Manifest};
pub use repository::{ReadData, Repository, SnapshotInfo, SnapshotMeta, Source};
pub use rustic::RusticRepository;

/// Where the data of a site volume appears inside a snapshot (`restic ls <id>` shows `/data`).
pub const SNAPSHOT_ROOT: &str = "/data";

/// Each customer's repository, from the configured target and Berth's keys.
#[derive(Clone)]
pub struct Backups {
    config: BackupConfig,
    keys: Arc<Keys>,
}

impl std::fmt::Debug for Backups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backups").field("target", &self.config.target).field("dir", &self.config.dir).finish()
    }
}

impl Backups {
    pub fn new(config: BackupConfig, keys: Arc<Keys>) -> Self {
        Self { config, keys }
    }

    /// `local` or `s3`: recorded on each backup row.
    pub fn target(&self) -> BackupTarget {
        self.config.target
    }

    /// The directory of local repositories, the cache and the staging area.
    pub fn dir(&self) -> &std::path::Path {
        &self.config.dir
    }

    /// The password of `customer_id`'s repository (derived from the secret key; never stored).
    pub fn password(&self, customer_id: Uuid) -> String {
        self.keys.backup_repo_password(customer_id)
    }

    /// The repository of `customer_id`.
    pub fn repository(&self, customer_id: Uuid) -> Arc<dyn Repository> {
        Arc::new(self.rustic(customer_id))
    }

    /// The repository of `customer_id` as its concrete type.
    pub fn rustic(&self, customer_id: Uuid) -> RusticRepository {
        let staging = self.config.dir.join(".staging");
        let name = repo_name(customer_id);
        match &self.config.s3 {
            Some(s3) if self.config.target == BackupTarget::S3 => RusticRepository::s3(
                s3,
                &format!("{}/{name}", s3.prefix),
                self.password(customer_id),
                Some(self.config.dir.join(".cache")),
                staging,
            ),
            _ => RusticRepository::local(self.config.dir.join(&name), self.password(customer_id), staging),
        }
    }

    /// How the `restic` CLI names this customer's repository (`-r`): a local path, or
    /// `s3:<endpoint>/<bucket>/<prefix>/customer-<id>`.
    pub fn restic_url(&self, customer_id: Uuid) -> String {
        let name = repo_name(customer_id);
        match &self.config.s3 {
            Some(s3) if self.config.target == BackupTarget::S3 => {
                format!("s3:{}/{}/{}/{name}", s3.endpoint.as_str().trim_end_matches('/'), s3.bucket, s3.prefix)
            }
            _ => self.config.dir.join(name).display().to_string(),
        }
    }

    /// Where a local repository lies (target `local` only).
    pub fn local_path(&self, customer_id: Uuid) -> Option<PathBuf> {
        (self.config.target == BackupTarget::Local).then(|| self.config.dir.join(repo_name(customer_id)))
    }
}

fn repo_name(customer_id: Uuid) -> String {
    format!("customer-{customer_id}")
}
