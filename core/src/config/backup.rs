//! Backups: where they are written. docs/backups.md describes them.

use std::path::{Path, PathBuf};

use super::{Mask, Raw, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[BACKUP_DIR];

const BACKUP_DIR: Setting = Setting {
    key: "backup_dir",
    default: "$BERTH_DATA_DIR/backups",
    mask: Mask::Plain,
    about: "where backups are written; platform backups go to its `platform/` folder",
    value: |c| Some(c.backup.dir.display().to_string()),
};

#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// The backup directory (`BERTH_BACKUP_DIR`).
    pub dir: PathBuf,
}

impl BackupConfig {
    pub(super) fn load(raw: &mut Raw, data_dir: &Path) -> Self {
        let dir = raw.get(&BACKUP_DIR).map(PathBuf::from).unwrap_or_else(|| data_dir.join("backups"));
        BackupConfig { dir }
    }

    /// Where platform backups (Berth's own database) are written, one folder each.
    pub fn platform_dir(&self) -> PathBuf {
        self.dir.join("platform")
    }
}
